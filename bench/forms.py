"""Filling the shipped official forms: time and size, next to the bare library calls.

Run by hand (no services needed: the engine reads only the PDFs in the repository):

    .venv/bin/python bench/forms.py [--rounds 10]

For each shipped form, after one warm-up, `rounds` times in turn:
- fill: `portal.forms.filling.fill()` with a value in every entry of the form's map (the
  AcroForm 13753*04: values set, appearances drawn by QPDF and by pikepdf's extended
  generator, XFA removed; the flat 12100*03 and 12101*03: the overlay laid out by WeasyPrint
  and laid over the page);
- bare: the least the same job needs: the AcroForm opened and saved by pikepdf with QPDF's
  appearance generation only, or the official PDF opened and saved untouched;
- flatten: `flatten()` of the filled AcroForm, as the pack does.
Prints the medians in milliseconds, the ratio fill / bare, and the sizes of the official and
the filled file (the overlay embeds a subset of DejaVu Sans). Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pikepdf
from pikepdf.form import Form, TextField

from portal.forms.filling import fill, flatten
from portal.forms.spec import load_forms


def _median_ms(func, rounds: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _bare(data: bytes, acroform: bool) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        if acroform:
            form = Form(pdf)
            for _name, field in form.items():
                if isinstance(field, TextField):
                    field.value = "X"
            pdf.generate_appearance_streams()
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(
        f"{'form':<16} {'fill ms':>8} {'bare ms':>8} {'ratio':>6} {'flatten ms':>10} "
        f"{'official kB':>11} {'filled kB':>9}"
    )
    for spec in load_forms().values():
        if not spec.file.is_file():
            continue
        data = spec.file.read_bytes()
        entries = [(fm, "X" if fm.is_check else "MARQUEUR ÉÀÇ 12") for fm in spec.fields]
        filled = fill(spec, data, entries).pdf
        fill_ms = _median_ms(lambda: fill(spec, data, entries), args.rounds)  # noqa: B023
        bare_ms = _median_ms(lambda: _bare(data, spec.kind == "acroform"), args.rounds)  # noqa: B023
        flat_ms = _median_ms(lambda: flatten(filled), args.rounds)  # noqa: B023
        print(
            f"{spec.code:<16} {fill_ms:8.0f} {bare_ms:8.0f} {fill_ms / bare_ms:6.1f} "
            f"{flat_ms:10.0f} {len(data) / 1024:11.0f} {len(filled) / 1024:9.0f}"
        )


if __name__ == "__main__":
    main()
