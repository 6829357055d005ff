from benchmarks.posture.cli import main

raise SystemExit(main())
