from wtlab.cli import main

raise SystemExit(main())
