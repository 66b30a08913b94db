"""What a task was asked: every flag declared once (`flags`), each value with its source
(`inputs`), and the frozen options of the build tasks (`build`) and of `shell` (`shell`)."""
