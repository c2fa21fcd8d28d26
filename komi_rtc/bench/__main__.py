from .load import main

raise SystemExit(main())
