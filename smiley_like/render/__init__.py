"""Output for people: console text now, HTML later."""
