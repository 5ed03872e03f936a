"""Safe output directories for the demo-data writers.

A demo dataset directory carries a ``DEMO_DATA.json`` stamp with the parameters that made it.
Asking for the same dataset again is a no-op; a directory that holds anything else is never
written into (it may be the user's real data).
"""
import json
from pathlib import Path
from typing import Callable, Sequence, Tuple

STAMP = 'DEMO_DATA.json'


def write_once(out_dir, params: dict, write: Callable[[Path], None]) -> Path:
    """Call ``write(out_dir)`` unless ``out_dir`` already holds the dataset ``params`` describe.

    Raises:
        FileExistsError: ``out_dir`` is not empty and is not a demo dataset with these params.
    """
    out = Path(out_dir)
    stamp = out / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return out
    if out.exists() and any(out.iterdir()):
        what = 'a demo dataset made with other parameters' if stamp.is_file() else 'other files'
        raise FileExistsError(
            f'{out} already exists and holds {what}; demo data is only written into a new or empty '
            f'directory. Choose another --out, or delete {out} yourself if it is disposable.')
    out.mkdir(parents=True, exist_ok=True)
    write(out)
    stamp.write_text(json.dumps(params, indent=1))  # last: a half-written directory has no stamp
    return out


def write_train_val(out_dir, fmt: str, write_split: Callable[..., None], splits: Sequence[str],
                    num_train: int, num_val: int, image_size: Tuple[int, int], seed: int,
                    classes: Sequence[str]) -> Path:
    """``write_once`` for a train/val dataset: ``write_split(out, split, num, image_size, seed)``
    per split (``splits`` = (train name, val name))."""
    params = dict(format=fmt, num_train=num_train, num_val=num_val,
                  image_size=list(image_size), seed=seed, classes=list(classes))

    def write(out: Path) -> None:
        for split, num in zip(splits, (num_train, num_val)):
            write_split(out, split, num, image_size, seed)

    return write_once(out_dir, params, write)
