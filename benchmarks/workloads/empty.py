"""An empty program: measures the fixed start-up and shut-down cost of each mode."""
