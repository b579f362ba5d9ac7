"""The `realize` console script: the same as `python manage.py realize ...`."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["consensus"]:
        from realize_site.fast_consensus import consensus

        try:
            code = consensus(sys.argv[2:])
        except KeyboardInterrupt:
            # Only the waiting stops: the run belongs to the worker and finishes there.
            sys.stderr.write(
                "realize: interrupted; the consensus run goes on in the background "
                "(the dashboard shows how it ends)\n"
            )
            sys.exit(130)
        if code is not None:
            sys.exit(code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realize_site.settings")
    try:
        import django

        django.setup()
    except Exception as exc:  # noqa: BLE001 - settings errors get one line, not a traceback
        sys.stderr.write(f"realize: error: cannot start: {exc}\n")
        sys.exit(2)
    from realize_site.management.commands.realize import Command

    Command().run_from_argv(["realize", "realize", *sys.argv[1:]])


if __name__ == "__main__":
    main()
