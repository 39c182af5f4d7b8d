"""Local fakes of the platforms minibase talks to (Alipay, WeChat, Douyin), served over
real HTTP by :func:`tests.fakes.server.serve_app`. Test-only: never imported by the package."""
