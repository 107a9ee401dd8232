"""Monthly reports for leadership and auditors: the state-change journal, availability, PDF and XLSX."""
