"""Are the faces in two photos the same person? Uses the pipeline stages directly.

python examples/compare_faces.py photo1.jpg photo2.jpg
"""

import sys
from pathlib import Path

import numpy as np

from photocluster import DetectionSettings, analyze_file


def main() -> None:
    a, b = (analyze_file(Path(p), DetectionSettings()) for p in sys.argv[1:3])
    for i, fa in enumerate(a.faces):
        for j, fb in enumerate(b.faces):
            d = float(np.linalg.norm(fa.embedding - fb.embedding))
            verdict = "same person" if d < 0.6 else "different people"
            print(f"face {i} {fa.box.as_list(0)} vs face {j} {fb.box.as_list(0)}: distance {d:.3f} ({verdict})")


if __name__ == "__main__":
    main()
