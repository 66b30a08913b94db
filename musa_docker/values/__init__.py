"""The grammar of what users type, checked before any work: paths, git refs and repo URLs, image
references, artifact locations (and their secrets), YAML files with lines, wheel names, CA files,
proxies and credentialed indexes."""
