"""One build, start to end: what the disk and engine say (`observe`), the build dir (`builddir`),
the staged context (`context`, `layers`), the builders (`run`, `buildkit`, `log`), and the pipeline
that runs prepare -> build -> check -> report (`pipeline`)."""
