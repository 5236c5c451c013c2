"""Text of the handbook domain's binary documents, expenses-and-travel.pdf and remote-work-policy.docx: pages of
blocks in the content model described in build_binary_docs.py."""

# handbook / expenses-and-travel.pdf
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

# handbook / remote-work-policy.docx
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
