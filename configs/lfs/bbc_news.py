"""Labeling functions for the BBC News topics (labels: business, entertainment, politics, sports, tech).

Used via ``weak_label.lf_module: configs/lfs/bbc_news.py``. Written the way a user writes a first LF set: one or
two keyword lists per topic from a skim of the gold dev rows, no tuning against the test set. They cover about
half of the pool and rarely fire together, which is the case Snorkel's LabelModel handles worst (it learns LF
accuracies from their agreements): the weak-label step then falls back to a vote weighted by dev accuracies.
"""

from driftloop.tasks.lf import keyword_lf, regex_lf

LABELS = ["business", "entertainment", "politics", "sports", "tech"]

LFS = [
    # --- business: markets, companies, the economy -----------------------------------------------------
    keyword_lf("business_markets", ["shares", "stock market", "profits", "investors", "economy"], "business"),
    keyword_lf("business_firms", ["firm", "bank", "airline", "oil"], "business"),
    regex_lf("business_dollars", r"\$\d", "business"),
    # --- entertainment: film, music, tv, awards ---------------------------------------------------------
    keyword_lf("entertainment_film", ["film", "movie", "oscar", "actor", "actress", "box office"], "entertainment"),
    keyword_lf("entertainment_music", ["album", "singer", "band", "music", "festival"], "entertainment"),
    # --- politics: parties, government, elections -------------------------------------------------------
    keyword_lf("politics_parties", ["labour", "tory", "tories", "lib dems", "conservatives", "mps"], "politics"),
    keyword_lf("politics_election", ["election", "blair", "minister"], "politics"),
    # --- sports: competitions, teams, players -----------------------------------------------------------
    keyword_lf("sports_football", ["striker", "coach", "goal", "champions league", "premiership"], "sports"),
    keyword_lf("sports_rugby_tennis", ["rugby", "six nations", "tennis"], "sports"),
    keyword_lf("sports_athletics", ["olympic", "athletics", "marathon", "world record"], "sports"),
    # --- tech: computing, phones, the internet -----------------------------------------------------------
    keyword_lf("tech_computing", ["software", "computer", "computers", "microsoft", "virus"], "tech"),
    keyword_lf("tech_internet", ["internet", "broadband", "online"], "tech"),
    keyword_lf("tech_gadgets", ["gadget", "gadgets", "gamers", "technology"], "tech"),
]
