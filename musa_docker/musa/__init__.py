"""The MUSA stack as facts: GPU archs, what each image kind holds, the optional source components,
the SDK routes (vendor archives, the apt repository, the MUSA pip index), and the pins file."""
