"""The plan: pure data saying everything a build will do (`plan`), and the Dockerfile templates
rendered for its builder (`dockerfile`). Nothing here touches disk, network or engine."""
