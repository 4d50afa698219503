"""One cliff command class per module, registered as entry points in setup.cfg."""
