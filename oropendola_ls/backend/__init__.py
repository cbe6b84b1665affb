"""Everything that talks to the Oropendola backend. Plain asyncio code: no pygls imports."""
