"""Stand-ins for outside services, speaking their real wire formats on loopback."""
