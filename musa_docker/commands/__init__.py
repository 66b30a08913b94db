"""One library function per task, called by the thin invoke tasks: `build` (build-base, build-dev,
release), `matrix` (build-all), `shell`, `push`, `pins`."""
