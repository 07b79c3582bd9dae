"""Second-generation resident identity cards: numbers, regions, validation, synthetic cards."""
