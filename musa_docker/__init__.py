"""musa_docker: build the Docker images torch_musa is developed and shipped in."""

__version__ = "0.1.0"
