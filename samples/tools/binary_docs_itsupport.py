"""Text of the itsupport domain's binary documents, backup-and-recovery.pdf and laptop-standards.docx: pages of
blocks in the content model described in build_binary_docs.py."""

# itsupport / backup-and-recovery.pdf
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

# itsupport / laptop-standards.docx
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
