"""Write an *untrained* tiny SS4D pipeline folder, to run the whole job before a trained model exists.

    python examples/make_random_tiny_pipeline.py out/tiny-random
    ss4d generate examples/clips/bouncing_ball.gif -o out/ball --model out/tiny-random

The output is noise shaped by the input's silhouette sampling; it shows the files and the preview
the trained ``checkpoints/ss4d-tiny`` will produce.
"""

import argparse

from ss4d.pipelines import build_tiny_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build_tiny_pipeline(seed=args.seed).save_pretrained(args.folder)
    print(f"wrote an untrained tiny pipeline to {args.folder}")


if __name__ == "__main__":
    main()
