"""The web console for staff, department officers, managers and admins (docs/console.md)."""
