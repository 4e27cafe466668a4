"""A built-in list of small organic molecules (H, C, N, O, F; at most 9 heavy atoms, QM9-like), for
tests and quick runs: common solvents, alcohols, acids, amines, heterocycles and aromatics."""

SMALL_MOLECULES: tuple[str, ...] = (
    "C", "CC", "CCC", "CCCC", "CC(C)C", "CCCCC", "CC(C)CC", "CC(C)(C)C", "CCCCCC", "CCCCCCC",
    "C=C", "CC=C", "C=CC=C", "CC=CC", "C#C", "CC#C", "CC#CC", "C1CC1", "C1CCC1", "C1CCCC1",
    "C1CCCCC1", "CC1CCCCC1", "C1=CCCC1", "C1=CCCCC1", "O", "CO", "CCO", "CCCO", "CC(C)O", "CCCCO",
    "CC(C)(C)O", "OCCO", "OCC(O)CO", "C1CCOC1", "C1COCCO1", "COC", "CCOCC", "C=O", "CC=O", "CCC=O",
    "CC(C)=O", "CCC(C)=O", "O=C1CCCC1", "O=C1CCCCC1", "OC=O", "CC(=O)O", "CCC(=O)O", "OC(=O)C(=O)O",
    "COC=O", "CC(=O)OC", "CCOC(C)=O", "N", "CN", "CCN", "CNC", "CN(C)C", "CCCN", "NCCN", "C1CCNC1",
    "C1CCNCC1", "C1COCCN1", "C#N", "CC#N", "CCC#N", "N#CC#N", "NC=O", "CC(N)=O", "CNC=O", "CN(C)C=O",
    "NC(N)=O", "OCCN", "NCC(=O)O", "CC(N)C(=O)O", "c1ccccc1", "Cc1ccccc1", "CCc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Fc1ccccc1", "COc1ccccc1", "Cc1ccccc1C", "Cc1cccc(C)c1", "Cc1ccc(C)cc1", "O=Cc1ccccc1",
    "N#Cc1ccccc1", "c1ccncc1", "Cc1ccccn1", "c1cnccn1", "c1ncncn1", "c1ccoc1", "c1cc[nH]c1", "c1cn[nH]c1",
    "c1c[nH]cn1", "c1cocn1", "Cc1ccco1", "O=c1cc[nH]cc1", "O=c1cccc[nH]1", "FC", "FCC", "FC(F)F",
    "FC(F)(F)F", "OC(F)(F)F", "FCCO", "CC(F)(F)F", "FC=C", "OC(=O)C(F)(F)F", "CC(C)C=O", "CC(C)CO",
    "CCC(C)O", "CCCC=O", "CCCCC=O", "CC(=O)C(C)=O", "CC(O)C(=O)O", "OCC(=O)O", "C=CC#N", "C=CC=O",
    "C=CCO", "C=CC(=O)O", "CC(=C)C", "CC(C)N", "CC(C)(C)N", "CC1=CCCCC1", "OC1CCCCC1", "NC1CCCCC1",
    "O=C1CCCN1", "O=C1CCCCN1", "O=C1OCCO1", "C1CC2CC1C2", "C1CC1C1CC1", "CC1(C)CC1", "OC1CC1",
    "CC(=O)NC", "CCNCC", "CCOC=O", "COCCO", "COCCOC", "CC(C)OC(C)C", "NCCO", "NCCCO", "OCCCO",
    "CC(O)CO", "O=C(O)CC(=O)O", "NC(=O)C(N)=O", "N#CCC#N", "CC(C)(O)C#C", "C#CCO", "C#CCN",
)
