"""`make demo`: placeholder until the lab lands (replaced by the lab work)."""


def cli_main(argv: list[str]) -> int:
    print("wtlab demo: not built yet")
    return 1
