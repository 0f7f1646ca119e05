"""The hub's actors: each owns one piece of state and changes it only from its mailbox."""
