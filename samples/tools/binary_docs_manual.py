"""Text of the manual domain's binary documents, calibration-procedure.pdf and maintenance-and-cleaning.docx: pages of
blocks in the content model described in build_binary_docs.py."""

# manual / calibration-procedure.pdf
CALIBRATION = [
    [
        ("h1", "Quillon Aurora 3 Spectrophotometer - Calibration and Performance Verification"),
        (
            "p",
            "Operator's Manual, section 6. Document AUR3-OM-06, revision D, March 2025. Applies to "
            "the Aurora 3 (AUR3-S) and the Aurora 3 Plus (AUR3-P) running firmware 4.x.",
        ),
        ("h2", "6.1 Overview"),
        (
            "p",
            "Every Aurora 3 is calibrated at the factory and ships with a calibration certificate "
            "that is valid for 12 months from the date of shipment. Between service visits, "
            "operators verify performance with the built-in tests described in this section and "
            "with the Quillon Calibration Set QCS-ND3 (accessory part number AUR-ACC-CAL).",
        ),
        ("h2", "6.2 Calibration schedule"),
        (
            "bullets",
            [
                "Baseline (blank) correction: at the start of every measurement session and whenever "
                "the method changes.",
                "Dark current correction: automatic at power-on and every 60 minutes during operation.",
                "Wavelength accuracy check: weekly.",
                "Photometric accuracy check: monthly.",
                "Stray light check: quarterly.",
                "Full calibration: every 6 months, and always after a lamp replacement, after the "
                "instrument has been moved to a new location, or after a major firmware upgrade.",
            ],
        ),
        ("h2", "6.3 Before you start"),
        (
            "bullets",
            [
                "Let the instrument warm up for at least 30 minutes so that both lamps are stable.",
                "Empty and clean the sample compartment and close the lid.",
                "For a full calibration the room temperature should be between 20 and 25 °C.",
                "Log in with a Supervisor or Administrator account; Operator accounts cannot start calibration tasks.",
            ],
        ),
    ],
    [
        ("h2", "6.4 Wavelength accuracy check"),
        (
            "p",
            "The wavelength check uses the holmium oxide glass filter mounted in the internal filter "
            "wheel, so no accessories are needed. Start it from Settings > Service > Calibration > "
            "Wavelength Check. The test locates four holmium peaks: 241.1 nm, 279.3 nm, 360.9 nm and "
            "536.4 nm. Each peak must lie within ±0.3 nm of its nominal value. The check takes about "
            "4 minutes. If any peak is out of tolerance the instrument shows error E-214 and, in GLP "
            "mode, blocks further measurements until a full calibration has passed.",
        ),
        ("h2", "6.5 Photometric accuracy check"),
        (
            "p",
            "Insert the three neutral density filters of the QCS-ND3 set one after the other. Their "
            "nominal values are 0.5, 1.0 and 2.0 Abs at 546 nm; the exact certified values are "
            "printed on the filter certificate and must be entered before the test. The tolerance is "
            "±0.008 Abs for the 0.5 Abs and 1.0 Abs filters and ±0.015 Abs for the 2.0 Abs filter. "
            "Filter certificates are valid for 2 years; return the set to Quillon for recertification "
            "before they expire. A failed photometric check is reported as error E-220.",
        ),
        ("h2", "6.6 Stray light check"),
        (
            "p",
            "Fill a 10 mm quartz cuvette with potassium chloride solution at 12 g/L in deionised "
            "water, and use deionised water in the reference position. The instrument measures the "
            "solution at 198 nm. The check passes when the absorbance is greater than 2.0 Abs, which "
            "corresponds to stray light below 1%. A failure is reported as error E-231 and is most "
            "often caused by an ageing deuterium lamp or contaminated optics.",
        ),
    ],
    [
        ("h2", "6.7 Running a full calibration"),
        (
            "steps",
            [
                "Remove all cuvettes. On the Aurora 3 Plus, replace the 8-position cell changer with the "
                "single-cell holder.",
                "Open Settings > Service > Calibration > Run Full Calibration.",
                "Enter your Supervisor PIN when prompted.",
                "The instrument performs a dark current measurement, records the lamp energy profile, "
                "calibrates the wavelength scale against the deuterium emission line at 656.1 nm and the "
                "holmium peaks, and then tests photometric linearity.",
                "Do not open the sample compartment lid while the calibration runs. A full calibration "
                "takes about 22 minutes.",
                "When it finishes, the instrument shows a calibration report with a pass or fail result "
                "for each test. Save the report to a USB drive or print it.",
            ],
        ),
        ("h2", "6.8 Calibration records"),
        (
            "p",
            "The Aurora 3 keeps the last 200 calibration and verification results in its Calibration "
            "Log (Settings > Service > Calibration > Log). The log can be exported to a USB drive as "
            "a CSV file. In GLP mode, log entries cannot be deleted and each one is signed with the "
            "user ID of the person who ran the test.",
        ),
        ("h2", "6.9 When a calibration fails"),
        (
            "bullets",
            [
                "Repeat the test once after a further 15 minutes of warm-up.",
                "Check that the filters and cuvettes are clean and correctly seated.",
                "Check the lamp hours in Settings > Service > Lamp Hours.",
                "If the test fails twice, contact Quillon Service and send them the calibration report.",
                "Do not use the instrument for regulated measurements until it passes. Attach the yellow "
                "Out of Calibration tag supplied with the instrument.",
            ],
        ),
    ],
]

# manual / maintenance-and-cleaning.docx
MAINTENANCE = [
    [
        ("h1", "Quillon Aurora 3 - Maintenance and Cleaning"),
        (
            "p",
            "Operator's Manual, section 7. Document AUR3-OM-07, revision C, March 2025. Applies to "
            "the Aurora 3 (AUR3-S) and the Aurora 3 Plus (AUR3-P).",
        ),
        (
            "p",
            "Regular care keeps the Aurora 3 accurate and extends the life of its lamps and optics. "
            "Before any maintenance task other than cleaning the exterior, switch the instrument off "
            "and disconnect the power cord.",
        ),
        ("h2", "7.1 Maintenance schedule"),
        (
            "table",
            [
                ["Task", "Interval", "Part number"],
                ["Wipe the exterior and the touchscreen", "Daily", "-"],
                ["Inspect the sample compartment for spills", "After each session", "-"],
                ["Clean cuvettes", "After every use", "-"],
                ["Check the desiccant indicator", "Monthly", "AUR-DES-01"],
                ["Clean the rear air filter", "Every 3 months", "-"],
                ["Replace the rear air filter", "Every 12 months", "AUR-FLT-02"],
                ["Replace the deuterium lamp", "After 2,000 hours", "AUR-LMP-D2"],
                ["Replace the tungsten-halogen lamp", "After 3,500 hours", "AUR-LMP-W"],
                ["Preventive maintenance visit by a Quillon engineer", "Once a year", "-"],
            ],
        ),
        ("h2", "7.2 Cleaning the exterior and touchscreen"),
        (
            "p",
            "Wipe the housing and the touchscreen with a lint-free cloth moistened with 70% isopropyl "
            "alcohol or with a 1% solution of mild detergent in water. Never use acetone, chlorinated "
            "solvents or abrasive cleaners: they damage the polycarbonate coating of the housing and "
            "the screen. Never spray liquid directly onto the instrument.",
        ),
        ("h2", "7.3 Cleaning up spills in the sample compartment"),
        (
            "steps",
            [
                "Stop the measurement and switch the instrument off.",
                "Remove the cell holder by loosening its two thumbscrews.",
                "Absorb the liquid with lint-free tissue, then wipe the compartment with deionised water "
                "followed by isopropyl alcohol.",
                "A drain under the compartment leads to a drip tray at the front-left of the underside. "
                "Pull the tray out, empty it and rinse it.",
                "Let the compartment dry for at least 1 hour before refitting the cell holder.",
            ],
        ),
        (
            "p",
            "After a spill of a corrosive liquid such as a strong acid or base, contact Quillon Service: "
            "the compartment seals must be inspected before the instrument is used again.",
        ),
        ("h2", "7.4 Cuvette care"),
        (
            "p",
            "Rinse cuvettes with deionised water immediately after use. To remove protein or dye "
            "residues, soak the cuvette in a 2% solution of QuillClean CX detergent for 10 minutes and "
            "then rinse it 3 times with deionised water. Always hold cuvettes by their frosted sides. "
            "Quartz cuvettes may be cleaned in an ultrasonic bath for no more than 5 minutes. Replace "
            "any cuvette whose optical faces are scratched.",
        ),
    ],
    [
        ("h2", "7.5 Replacing the lamps"),
        (
            "p",
            "The Aurora 3 uses a deuterium lamp (part AUR-LMP-D2, rated life 2,000 hours) for the "
            "ultraviolet range and a tungsten-halogen lamp (part AUR-LMP-W, rated life 3,500 hours) "
            "for the visible and near-infrared range. The hours used by each lamp are shown under "
            "Settings > Service > Lamp Hours.",
        ),
        (
            "steps",
            [
                "Switch the instrument off, unplug it and wait at least 20 minutes for the lamps to cool.",
                "Open the lamp access door on the left side panel. It is held by two captive screws that "
                "need a T20 Torx driver.",
                "Put on nitrile gloves. Never touch the glass of a lamp with bare fingers.",
                "Disconnect the lamp connector, loosen the mounting screws and lift the old lamp out.",
                "Insert the new lamp so that its flange sits against the locating pin, then tighten the "
                "screws and reconnect it.",
                "Close the lamp access door. A safety interlock prevents the lamps from lighting while the "
                "door is open.",
                "Switch on, let the instrument warm up, reset the counter under Settings > Service > "
                "Lamp Hours > Reset, and run a full calibration.",
            ],
        ),
        ("h2", "7.6 Air filter and desiccant"),
        (
            "p",
            "The rear air filter slides upwards out of its frame. Clean it with a vacuum cleaner every "
            "3 months and replace it every 12 months (part AUR-FLT-02). The desiccant cartridge "
            "(part AUR-DES-01) sits behind the front panel of the sample compartment and keeps the "
            "optics dry. Its indicator is blue while the desiccant is active and turns pink when it "
            "is saturated; replace the cartridge as soon as the indicator is pink.",
        ),
        ("h2", "7.7 Fuses"),
        (
            "p",
            "Two mains fuses sit in the drawer of the power inlet at the rear. Use only fuses of type "
            "T3.15A 250V, 5 x 20 mm. If a new fuse blows again, do not fit another one; contact "
            "Quillon Service.",
        ),
        ("h2", "7.8 Storage and transport"),
        (
            "p",
            "If the instrument will not be used for more than 2 weeks, switch it off and fit the dust "
            "cover. Store it at a temperature between 0 and 45 °C. Before transporting the "
            "instrument, refit the red transport lock screw as described in the installation "
            "section, and use the original packaging.",
        ),
    ],
]
