"""The traced side: what runs inside the user's program."""
