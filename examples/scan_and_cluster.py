"""Scan a folder, group the faces, and print who appears in most photos.

python examples/scan_and_cluster.py ~/Pictures [--db photos.db]
"""

import argparse

from photocluster import DetectionSettings, Store, recluster, scan
from photocluster.app import recluster as persons


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--db", default="photocluster-example.db")
    args = ap.parse_args()
    with Store(args.db) as store:
        report = scan(store, [args.folder], DetectionSettings(max_size=1024), workers=2)
        print(f"{report.analysed} photos analysed, {report.faces_found} faces, {len(report.errors)} bad files")
        recluster(store, min_size=2)
        for person in persons(store, include_unknown=False):
            best = person.faces[0]  # nearest to the person's centre
            print(f"{person.label}: {person.photo_count} photos, e.g. {best.photo_path}")


if __name__ == "__main__":  # required: scan's worker processes re-import this file
    main()
