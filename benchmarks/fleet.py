#!/usr/bin/env python3
"""Time of a 3-node `bwdoctor fleet` gather + evaluation over Ray's own start-up of the same cluster.

python benchmarks/fleet.py [--nodes 3]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    a = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    from bwdoctor import fleet

    t0 = time.perf_counter()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(a.nodes - 1):
        c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    c.wait_for_nodes()
    up = time.perf_counter() - t0
    t1 = time.perf_counter()
    got = fleet.gather_ray(None, 120)
    reports, cross, _ = fleet.evaluate(got)
    added = time.perf_counter() - t1
    ray.shutdown()
    c.shutdown()
    print(
        f"Ray cluster of {a.nodes} nodes up in {up:.1f} s; fleet gather + evaluation added {added:.1f} s "
        f"({len(reports)} node reports, {sum(f.status == 'fail' for f in cross)} cross-node failures)"
    )


if __name__ == "__main__":
    main()
