"""Top-level `fer-edge` group.

Commands are loaded lazily so `fer-edge --help` and the light commands start
fast and never import TensorFlow. Each command module parses its options, makes
one library call and prints the result (``--json`` for machines).
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import FerEdgeError, missing_extra_error

# command name -> (module, attribute). The module owns the command.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("fer_edge.cli.data_cmd", "data"),
    "train": ("fer_edge.cli.train_cmd", "train"),
    "eval": ("fer_edge.cli.train_cmd", "eval_cmd"),
    "convert": ("fer_edge.cli.convert_cmd", "convert"),
    "bench": ("fer_edge.cli.bench_cmd", "bench"),
    "predict": ("fer_edge.cli.live_cmd", "predict"),
    "live": ("fer_edge.cli.live_cmd", "live"),
    "quickstart": ("fer_edge.cli.quickstart_cmd", "quickstart"),
    "doctor": ("fer_edge.cli.doctor_cmd", "doctor"),
    "formats": ("fer_edge.cli.formats_cmd", "formats"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not part of this build
                return None
            raise
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):  # noqa: D102 - one place turns user errors into one line
        try:
            return super().invoke(ctx)
        except FerEdgeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except ModuleNotFoundError as exc:  # an optional extra that no up-front check caught
            err = missing_extra_error(exc)
            if err is None:
                raise
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fer-edge")
def main() -> None:
    """Facial emotion recognition from paper recipes to edge devices.

    \b
    Typical flow:
      fer-edge data info ../shared/data/fer2013/fer2013.csv.gz
      fer-edge train --recipe edge_plain44 --data ../shared/data/fer2013/fer2013.csv.gz --out runs/edge
      fer-edge convert runs/edge --format all --int8
      fer-edge bench runs/edge/export --device cpu --baseline mini-xception
      fer-edge live --model runs/edge/export/tflite-int8 --source 0
    """


if __name__ == "__main__":  # pragma: no cover
    main()
