from benchmarks.escape.harness import main

raise SystemExit(main())
