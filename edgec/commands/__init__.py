"""What the commands do beyond compiling: verify, bench, explore, conformance, the
reference runtimes, inspect, project configuration."""
