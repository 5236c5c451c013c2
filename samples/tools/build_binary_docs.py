#!/usr/bin/env python3
"""Build the binary (.pdf / .docx) documents of the lorag sample corpus.

The text of every binary document lives in this script, so the corpus can be
rebuilt at any time:

    .venv/bin/python samples/tools/build_binary_docs.py

Requires ``reportlab`` (PDF, real text layer) and ``python-docx`` (DOCX with
heading styles). Output goes to ``samples/corpus/<domain>/``.

Content model: a document is a list of *pages*; a page is a list of blocks:

    ("h1", text)       title / top-level heading
    ("h2", text)       section heading
    ("p", text)        paragraph
    ("bullets", [...]) bulleted list
    ("steps", [...])   numbered list
    ("table", [[header...], [row...], ...])   (DOCX only)

For PDFs each page of the list becomes exactly one PDF page (one
``showPage`` per page); for DOCX the page split is ignored.
"""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

# ---------------------------------------------------------------------------
# handbook / expenses-and-travel.pdf
# ---------------------------------------------------------------------------
EXPENSES_AND_TRAVEL = [
    [
        ("h1", "Quillon Instruments - Expenses and Business Travel Policy"),
        (
            "p",
            "Employee Handbook, chapter 5. Policy owner: Finance (Travel and Expenses). "
            "Version 5.1, effective 1 February 2025.",
        ),
        ("h2", "1. Principles"),
        (
            "p",
            "Spend Quillon's money as carefully as you would spend your own. You may claim only "
            "costs that you incurred wholly and necessarily for Quillon business, that comply with "
            "this policy, and that are supported by a receipt where one is required. All expense "
            "claims are submitted and approved in Ledgerline, the Quillon expense tool, which is "
            "available on the web and as a phone app.",
        ),
        ("h2", "2. Submitting a claim"),
        (
            "bullets",
            [
                "Submit each expense in Ledgerline within 60 days of the date it was incurred.",
                "A receipt is required for any single item over $25. Photograph paper receipts with the "
                "Ledgerline app; you do not need to keep the paper original once the photo is accepted.",
                "Meal claims need an itemised receipt, not just a card slip.",
                "Claims older than 90 days are rejected unless the Chief Financial Officer approves them.",
                "Expenses in a foreign currency are converted at the rate on your card statement or, for "
                "cash purchases, at the daily Ledgerline rate for the date of purchase.",
            ],
        ),
        ("h2", "3. Approval and payment"),
        (
            "bullets",
            [
                "Your line manager approves claims up to $2,500.",
                "Claims above $2,500 also need the approval of your director.",
                "Approvers should act on a claim within 5 working days of receiving it.",
                "Claims that are fully approved by the 18th of the month are reimbursed with that "
                "month's salary; claims approved later are paid in the following month's payroll.",
                "Finance audits a random sample of 1 in 20 approved claims every month.",
            ],
        ),
    ],
    [
        ("h2", "4. Booking travel"),
        (
            "p",
            "All flights, rail tickets and hotels are booked through the Brightpath Travel Desk, "
            "either with the Brightpath online booking tool or by phone on +1 555 0177. Bookings made "
            "elsewhere are reimbursed only if they were at least 20% cheaper than the fare offered by "
            "Brightpath and your manager approved them in advance.",
        ),
        (
            "bullets",
            [
                "Book flights at least 14 days before departure whenever possible.",
                "Economy class is used for flights with a scheduled duration under 6 hours.",
                "Premium economy may be booked for flights of 6 hours or more.",
                "Business class is allowed only for flights over 10 hours, and only with the approval "
                "of a Vice President.",
                "Rail travel is in standard class; first class is allowed for journeys over 3 hours.",
                "Hire cars must be in the compact category unless four or more employees share the car. "
                "Return hire cars with a full tank.",
                "Business mileage in your own car is reimbursed at $0.58 per mile. Commuting between "
                "home and your usual workplace is not business mileage.",
                "Taxis may be used when public transport is impractical, when carrying heavy equipment, "
                "or after 21:00.",
            ],
        ),
        ("h2", "5. Hotels"),
        (
            "p",
            "Hotel rates are capped per night, excluding taxes. The standard cap is $210 per night. "
            "In high-cost cities - New York, London, Tokyo, Zurich, San Francisco and Singapore - "
            "the cap is $285 per night. For stays of 14 nights or more in one place, Brightpath will "
            "book a serviced apartment instead of a hotel.",
        ),
        ("h2", "6. Meals and daily allowance"),
        (
            "p",
            "Instead of claiming individual meals while travelling overnight, you may claim a daily "
            "allowance (per diem) of $65 per day for domestic trips and $90 per day for "
            "international trips. If breakfast is included in the hotel rate, reduce the daily "
            "allowance by $15. The per diem cannot be combined with individual meal claims on the "
            "same day.",
        ),
    ],
    [
        ("h2", "7. Corporate card"),
        (
            "p",
            "Employees who travel on business more than 4 times per year are issued a Quillon "
            "Corporate Visa card. The standard monthly limit is $7,500; a higher limit needs CFO "
            "approval. Use the card for business expenses only. If a personal purchase is made by "
            "mistake, repay it to Quillon within 10 working days.",
        ),
        (
            "p",
            "If your card is lost or stolen, call the card issuer immediately using the number on the "
            "back of your welcome letter, and notify Finance at finance-help@quillon.example within "
            "24 hours. Card transactions must be matched to receipts in Ledgerline by the 10th of "
            "the following month.",
        ),
        ("h2", "8. Client entertainment"),
        (
            "p",
            "Client entertainment is limited to $120 per person, including drinks, tips and taxes. "
            "Events with more than 10 guests need your director's approval in advance. Record the "
            "names and companies of all attendees in the Ledgerline claim.",
        ),
        ("h2", "9. Expenses that are not reimbursed"),
        (
            "bullets",
            [
                "Hotel minibar items and in-room films.",
                "Traffic fines, parking fines and speeding penalties.",
                "Seat or class upgrades that are not allowed by this policy.",
                "Clothing, toiletries and personal grooming.",
                "Loyalty programme and airport lounge membership fees.",
            ],
        ),
        ("h2", "10. Travel insurance and emergencies"),
        (
            "p",
            "All business trips are covered by Quillon's travel insurance with Harbourline Assurance, "
            "policy number QI-TRV-4471. In an emergency while travelling, call the 24-hour travel "
            "assistance line on +1 555 0163. Every international trip must be booked or registered "
            "in Brightpath so that the Security team can locate you in a crisis. Travel to a country "
            "rated High Risk requires approval from the Security Manager at least 10 working days "
            "before departure.",
        ),
    ],
]

# ---------------------------------------------------------------------------
# handbook / remote-work-policy.docx
# ---------------------------------------------------------------------------
REMOTE_WORK = [
    [
        ("h1", "Remote and Hybrid Working Policy"),
        ("p", "Employee Handbook, chapter 4. Policy owner: People Team. Version 3.0, effective 1 February 2025."),
        ("h2", "1. Who this policy applies to"),
        (
            "p",
            "Hybrid working is open to employees in office-based roles who have completed their "
            "probation period. Laboratory, production, facilities and reception roles are "
            "site-based because the work can only be done on site. A fully remote role must be "
            "approved by a Vice President, and the employee must live in the country named in their "
            "employment contract.",
        ),
        ("h2", "2. The hybrid pattern"),
        (
            "p",
            "Hybrid employees may work remotely on up to 2 days per week. Every team has two anchor "
            "days, Tuesday and Thursday, when all team members work from the office so that "
            "meetings, reviews and workshops can take place in person. Managers may ask you to come "
            "in on other days for specific events, with at least one week's notice.",
        ),
        ("h2", "3. Requesting hybrid working"),
        (
            "p",
            "Request hybrid working by completing the Remote Work Agreement in QuillHub. Your manager "
            "approves the agreement, which then remains valid until it is reviewed. All agreements "
            "are reviewed each year in April, alongside objective setting.",
        ),
        ("h2", "4. Working hours and availability"),
        (
            "p",
            "Wherever you work, you must be available during the core hours of 10:00 to 15:00 local "
            "time, and your status in Quillon Chat must show when you are working. Quillon respects "
            "your right to disconnect: nobody is expected to read or answer messages after 19:00 "
            "or at weekends, except when on a formal on-call rota.",
        ),
    ],
    [
        ("h2", "5. Your home workspace"),
        (
            "bullets",
            [
                "A one-time home office allowance of $650 is available towards a desk, chair or lighting. "
                "Claim it in Ledgerline within 6 months of your Remote Work Agreement being approved.",
                "Hybrid and remote employees receive an internet allowance of $45 per month through payroll.",
                "Complete the home workstation self-assessment in QuillLearn within 2 weeks of starting "
                "hybrid working.",
                "IT provides a laptop, one monitor, a keyboard, a mouse and a headset for home use.",
            ],
        ),
        ("h2", "6. Working temporarily from another country"),
        (
            "p",
            "You may work from a country other than your country of employment for up to 18 working "
            "days per calendar year. Request it from the People Team at least 4 weeks before you "
            "travel, so that tax and immigration checks can be completed. Working from countries "
            "under international sanctions is never permitted.",
        ),
        ("h2", "7. Information security at home"),
        (
            "bullets",
            [
                "Always connect to Quillon systems through the company VPN.",
                "Do not print Confidential or Restricted documents at home.",
                "Never use public Wi-Fi without the VPN, and never leave your laptop unattended in public.",
                "Do not let family members or friends use your Quillon laptop.",
            ],
        ),
        ("h2", "8. Desks in the office"),
        (
            "p",
            "Office desks are shared. Book a desk in the DeskFinder app up to 21 days in advance. If "
            "you do not check in to your booked desk by 10:30, the booking is released for "
            "colleagues. Personal belongings may be kept overnight in your locker, not on the desk.",
        ),
        ("h2", "9. Travel to the office"),
        (
            "p",
            "Costs of commuting to your usual office are not reimbursed. Employees on a fully remote "
            "contract can claim travel costs when they are asked to attend an office event.",
        ),
        ("h2", "10. Changing or ending the arrangement"),
        (
            "p",
            "Either you or your manager may end a hybrid arrangement with one month's notice, for "
            "example when business needs change or when the arrangement is not working. Disagreements "
            "are resolved with your HR Business Partner.",
        ),
    ],
]

# ---------------------------------------------------------------------------
# manual / calibration-procedure.pdf
# ---------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------
# manual / maintenance-and-cleaning.docx
# ---------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------
# itsupport / backup-and-recovery.pdf
# ---------------------------------------------------------------------------
BACKUP = [
    [
        ("h1", "Backup and Data Recovery Guide"),
        (
            "p",
            "IT Support knowledge base article KB-0207. Owner: Infrastructure and Operations team. "
            "Updated February 2025.",
        ),
        (
            "p",
            "This guide explains which Quillon data is backed up, how long backups are kept, how you "
            "can restore files yourself and how to ask the IT Service Desk for a restore.",
        ),
        ("h2", "1. Where to keep your files"),
        (
            "p",
            "Save your work files in QuillDrive, your personal cloud storage, or in a TeamSpaces site "
            "shared with your team. Every user has 1 TB of QuillDrive storage. The Desktop, "
            "Documents and Pictures folders of every Quillon laptop are redirected to QuillDrive "
            "automatically. Files saved anywhere else on the local disk of a laptop, for example in "
            "C:\\Data, are not backed up.",
        ),
        ("h2", "2. Restoring a deleted file yourself"),
        (
            "bullets",
            [
                "Deleted QuillDrive files stay in the QuillDrive recycle bin for 93 days.",
                "Version history keeps the last 250 versions of every file. Right-click the file and "
                "choose Version history to open or restore an earlier version.",
                "The Restore your QuillDrive feature rolls your whole QuillDrive back to any point in the "
                "previous 30 days, which is useful after ransomware or a mass deletion.",
                "TeamSpaces site owners can restore deleted files of their site from the site recycle bin.",
            ],
        ),
    ],
    [
        ("h2", "3. Server and application backups"),
        (
            "p",
            "Servers and business applications are backed up every night, starting at 01:00. Nightly "
            "backups are incremental; a full backup runs every Saturday. Backups are kept as "
            "follows: 35 daily backups, 12 monthly backups and 7 yearly backups. Every backup is "
            "copied to the secondary data centre at the Orrin Valley site (DC2), and an immutable "
            "copy is locked for 21 days so that it cannot be altered or deleted, even by "
            "administrators.",
        ),
        ("h2", "4. Laboratory data"),
        (
            "p",
            "Instrument PCs in the laboratories save results to the LabStore network share, which is "
            "backed up every hour. Laboratory data is retained for 15 years. Instrument PCs that "
            "cannot run the backup agent must copy their results to LabStore at the end of each "
            "working day; the lab coordinator checks this weekly.",
        ),
        ("h2", "5. Recovery objectives"),
        (
            "p",
            "Quillon systems are grouped into three tiers. The recovery point objective (RPO) is the "
            "maximum amount of data, measured in time, that may be lost; the recovery time objective "
            "(RTO) is the maximum time to bring the system back.",
        ),
        (
            "bullets",
            [
                "Tier 1 - ERP, the Quality Management System and LabStore: RPO 1 hour, RTO 4 hours.",
                "Tier 2 - email, QuillHub and file services: RPO 12 hours, RTO 24 hours.",
                "Tier 3 - development and test systems: RPO 24 hours, RTO 5 business days.",
            ],
        ),
    ],
    [
        ("h2", "6. Requesting a restore"),
        (
            "p",
            "If you cannot restore a file yourself, raise a ticket in the ServiceDesk portal in the "
            "category Data Restore. Give the full path and name of the file or folder and the "
            "approximate date and time of the version you need. Standard restore requests are "
            "completed within 2 business days. Urgent restores of business-critical data are "
            "completed within 6 business hours when your manager approves the urgency on the "
            "ticket. Restores of Restricted data also need the approval of the data owner.",
        ),
        ("h2", "7. Testing our backups"),
        (
            "p",
            "The Infrastructure team tests restores from backup every quarter, choosing systems at "
            "random. A full disaster recovery exercise, in which Tier 1 systems are brought up at DC2, "
            "takes place every year in November. Results are reported to the IT Steering Committee.",
        ),
        ("h2", "8. What is not backed up"),
        (
            "bullets",
            [
                "Files on the local disk of a laptop outside the redirected folders.",
                "USB drives, including Quillon SecureKey drives.",
                "Personal email archive files (PST files), which are not permitted on Quillon laptops.",
                "Quillon Chat messages older than 2 years, which are deleted under the retention policy.",
            ],
        ),
        ("h2", "9. Your responsibilities"),
        (
            "bullets",
            [
                "Keep work files in QuillDrive or TeamSpaces, never only on your laptop.",
                "Make sure the QuillDrive icon shows that sync is up to date before you return or exchange a laptop.",
                "Report any file that you suspect was encrypted or changed by malware to the IT Service "
                "Desk immediately, and do not try to restore it yourself.",
            ],
        ),
    ],
]

# ---------------------------------------------------------------------------
# itsupport / laptop-standards.docx
# ---------------------------------------------------------------------------
LAPTOPS = [
    [
        ("h1", "Laptop Standards and Lifecycle"),
        ("p", "IT Support knowledge base article KB-0142. Owner: End-User Computing team. Updated March 2025."),
        ("h2", "Standard laptop models"),
        (
            "p",
            "Quillon supports four laptop profiles. The profile is chosen from your job role when your "
            "account is created.",
        ),
        (
            "table",
            [
                ["Profile", "Model", "Specification", "Typical users"],
                [
                    "Standard",
                    "Corvex Book 14 G3",
                    "16 GB RAM, 512 GB SSD, 14-inch screen",
                    "Office, sales, HR and finance staff",
                ],
                [
                    "Performance",
                    "Corvex Book 16 Pro",
                    "32 GB RAM, 1 TB SSD, 16-inch screen",
                    "Software developers and data analysts",
                ],
                [
                    "Engineering",
                    "Corvex Workstation 16",
                    "64 GB RAM, 2 TB SSD, dedicated graphics",
                    "Optical and mechanical engineers using CAD and simulation",
                ],
                ["Field", "Corvex Rugged 13", "16 GB RAM, 512 GB SSD, drop-tested to 1.2 m", "Field service engineers"],
            ],
        ),
        (
            "p",
            "A non-standard model needs a business case approved by your department head and by the "
            "End-User Computing manager. macOS devices are provided only to the Marketing design team.",
        ),
        ("h2", "Getting a laptop"),
        (
            "p",
            "For new starters the laptop is ordered automatically when the People Team creates the "
            "starter record in QuillHub. It will be ready at the Tech Bar on the first day if the "
            "record was created at least 10 working days before the start date. Employees moving "
            "to a role with a different profile request a new laptop in the ServiceDesk portal.",
        ),
        ("h2", "Refresh cycle"),
        (
            "p",
            "Laptops are replaced every 4 years; Field profile laptops are replaced every 3 years. You "
            "receive an email 6 weeks before your replacement is due, with a link to book an exchange "
            "appointment at the Tech Bar. The appointment takes about 45 minutes. Files in QuillDrive "
            "appear on the new laptop automatically; local files outside QuillDrive are not migrated.",
        ),
    ],
    [
        ("h2", "Security configuration"),
        (
            "bullets",
            [
                "Every disk is encrypted with BitLocker. If your laptop asks for a BitLocker recovery key, "
                "call the IT Service Desk; never try to bypass the prompt.",
                "Quillon Defender EDR protects every laptop against malware and must never be disabled.",
                "Security updates are installed automatically each month. You must restart your laptop "
                "within 7 days of an update; after that the restart is forced.",
                "Local administrator rights are not granted by default. Request them with an Elevated "
                "Access Request in the ServiceDesk portal; it needs approval from your manager and IT "
                "Security, and the rights expire automatically after 5 days.",
            ],
        ),
        ("h2", "Lost or stolen laptops"),
        (
            "p",
            "Report a lost or stolen laptop to the IT Service Desk immediately, as required by the "
            "incident reporting procedure. IT will lock the laptop remotely and wipe it the next time "
            "it connects to the internet. If the laptop was stolen, report the theft to the police "
            "within 48 hours and add the police reference number to your ticket. A replacement "
            "laptop is issued on the next business day.",
        ),
        ("h2", "Loan laptops"),
        (
            "p",
            "The Tech Bar keeps a pool of 12 loan laptops for people whose laptop is being repaired and "
            "for short projects. A loan lasts up to 15 working days and can only be extended with your "
            "manager's approval.",
        ),
        ("h2", "Accessories"),
        (
            "bullets",
            [
                "Every employee receives a USB-C docking station, a keyboard, a mouse and a headset.",
                "Office desks have one 27-inch monitor; Engineering profile users get two.",
                "Replacement chargers are free from the Tech Bar.",
                "A laptop battery is replaced free of charge when its health falls below 70%.",
            ],
        ),
        ("h2", "Returning a laptop"),
        (
            "p",
            "Return your laptop to your manager or to the Tech Bar on your last working day. Returned "
            "laptops are wiped with a certified erasure process. Laptops that are still in good "
            "condition are refurbished and donated to local schools through the Second Light programme.",
        ),
    ],
]


DOCUMENTS = [
    ("handbook", "expenses-and-travel.pdf", EXPENSES_AND_TRAVEL),
    ("handbook", "remote-work-policy.docx", REMOTE_WORK),
    ("manual", "calibration-procedure.pdf", CALIBRATION),
    ("manual", "maintenance-and-cleaning.docx", MAINTENANCE),
    ("itsupport", "backup-and-recovery.pdf", BACKUP),
    ("itsupport", "laptop-standards.docx", LAPTOPS),
]

FIXED_DATE = _dt.datetime(2025, 3, 1, 9, 0, 0)


# ---------------------------------------------------------------------------
# PDF writer (reportlab canvas, one showPage per page)
# ---------------------------------------------------------------------------
def build_pdf(path: Path, pages: list, title: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    width, height = A4
    left, right, top, bottom = 20 * mm, 20 * mm, 22 * mm, 20 * mm
    text_width = width - left - right
    styles = {
        "h1": ("Helvetica-Bold", 15, 19, 10),
        "h2": ("Helvetica-Bold", 12, 15, 5),
        "p": ("Helvetica", 10, 13, 6),
    }

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle(title)
    c.setAuthor("Quillon Instruments (fictional sample corpus)")
    total = len(pages)

    for page_no, blocks in enumerate(pages, start=1):
        y = height - top

        def write_lines(lines, font, size, leading, indent=0.0):
            nonlocal y
            c.setFont(font, size)
            for line in lines:
                if y < bottom + leading:
                    raise ValueError(f"{path.name}: page {page_no} overflows; move content to next page")  # noqa: B023 - called within this iteration only
                c.drawString(left + indent, y, line)
                y -= leading

        for kind, content in blocks:
            if kind in ("h1", "h2", "p"):
                font, size, leading, after = styles[kind]
                if kind == "h2":
                    y -= 4
                write_lines(simpleSplit(content, font, size, text_width), font, size, leading)
                y -= after
            elif kind in ("bullets", "steps"):
                font, size, leading, after = styles["p"]
                for i, item in enumerate(content, start=1):
                    marker = "\u2022" if kind == "bullets" else f"{i}."
                    lines = simpleSplit(item, font, size, text_width - 8 * mm)
                    c.setFont(font, size)
                    c.drawString(left + 2 * mm, y, marker)
                    write_lines(lines, font, size, leading, indent=8 * mm)
                    y -= 2
                y -= after
            elif kind == "table":
                raise ValueError("tables are supported in DOCX output only")
            else:
                raise ValueError(f"unknown block kind {kind!r}")

        c.setFont("Helvetica", 8)
        c.drawString(left, 12 * mm, "Quillon Instruments - fictional sample document for lorag")
        c.drawRightString(width - right, 12 * mm, f"Page {page_no} of {total}")
        c.showPage()
    c.save()


# ---------------------------------------------------------------------------
# DOCX writer (python-docx, real heading styles)
# ---------------------------------------------------------------------------
def build_docx(path: Path, pages: list, title: str) -> None:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = title
    props.author = "Quillon Instruments (fictional sample corpus)"
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = "build_binary_docs.py"
    props.revision = 1

    for blocks in pages:
        for kind, content in blocks:
            if kind == "h1":
                document.add_heading(content, level=1)
            elif kind == "h2":
                document.add_heading(content, level=2)
            elif kind == "p":
                document.add_paragraph(content)
            elif kind == "bullets":
                for item in content:
                    document.add_paragraph(item, style="List Bullet")
            elif kind == "steps":
                for item in content:
                    document.add_paragraph(item, style="List Number")
            elif kind == "table":
                header, *rows = content
                table = document.add_table(rows=1, cols=len(header))
                table.style = "Table Grid"
                for cell, text in zip(table.rows[0].cells, header):
                    cell.text = text
                    for run in cell.paragraphs[0].runs:
                        run.bold = True
                for row in rows:
                    cells = table.add_row().cells
                    for cell, text in zip(cells, row):
                        cell.text = text
                document.add_paragraph()
            else:
                raise ValueError(f"unknown block kind {kind!r}")
    document.save(str(path))
    _normalise_zip(path)


def _normalise_zip(path: Path) -> None:
    """Rewrite a .docx (zip) with fixed timestamps so rebuilds are byte-identical."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)


def main() -> int:
    for domain, name, pages in DOCUMENTS:
        out_dir = CORPUS / domain
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        title = next(text for kind, text in pages[0] if kind == "h1")
        if name.endswith(".pdf"):
            build_pdf(path, pages, title)
        elif name.endswith(".docx"):
            build_docx(path, pages, title)
        else:
            raise ValueError(name)
        print(f"wrote {path.relative_to(CORPUS.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
