"""What this branch adds to the browser's core: nothing yet on master."""
NAMES = []


def handlers(db):
    """The routes this branch adds; db makes a variant database connection."""
    return []


def variant_extras(conn, variants):
    return variants
