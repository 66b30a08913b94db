"""Getting the inputs onto the host: artifacts downloaded into the cache (`download` over `single`
and `ranged` connections, `http`, `cache`), checked on arrival (`archives`), git repos cloned or
reused (`git`), and the locks that keep concurrent builds apart (`locks`)."""
