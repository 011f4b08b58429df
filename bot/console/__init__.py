"""The web console for staff, department officers, managers and admins (design.md §6)."""
