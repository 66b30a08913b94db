"""The Docker engine and the docker client: the SDK behind one small interface (`api`, the only
module that imports `docker`), the docker CLI and the choice of builder (`docker_cli`), and facts
about the host the images run on (`host`)."""
