"""Chain engines and validator-network tooling for city IT."""
