"""Video sources, detection, tracking and rule geometry. Imports no Django (see ARCHITECTURE.md)."""
