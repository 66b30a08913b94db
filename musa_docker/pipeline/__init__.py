"""One build, start to end: what the disk and engine say (`observe`), the build dir (`builddir`),
the staged context (`context`, `layers`), one build on the engine with either builder (`build`,
`buildkit`, `log`), and `execute`: prepare -> build -> check -> tag -> report."""
