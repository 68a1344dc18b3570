"""One tile of the unknowns panel: a group's best crops, counts, first/last seen, sources, and
its buttons (Name…, Ignore, "Is this X? Yes"; the tick box selects it for Merge).

The buttons call the panel (:class:`desktop.unknowns_panel.UnknownsPanel`); the crops arrive
later (decoded on a pool thread) through :meth:`GroupTile.set_crops`.
"""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from desktop.people_common import CROP, short_source, thumb, when


class GroupTile(QFrame):
    """One group: its best crops, counts, first/last seen, sources and its actions."""

    def __init__(self, info, panel) -> None:
        super().__init__()
        self.info = info
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.check = QCheckBox(f"Group {info.id}")
        self.check.setToolTip("Tick two groups, then Merge")
        self.check.toggled.connect(lambda _=False: panel._update_buttons())
        head = QHBoxLayout()
        head.addWidget(self.check)
        head.addStretch(1)
        head.addWidget(QLabel(f"{info.sightings} sighting{'s' if info.sightings != 1 else ''}"))
        self.crops = {}
        self.crops_set = 0
        row = QHBoxLayout()
        for sid in info.best:
            lab = QLabel()
            lab.setFixedSize(CROP, CROP)
            lab.setToolTip(f"sighting {sid}")
            lab.setObjectName("crop")
            self.crops[sid] = lab
            row.addWidget(lab)
        row.addStretch(1)
        more = len(info.sources) - 2
        sources = ", ".join(short_source(x) for x in info.sources[:2]) + (f" +{more}" if more > 0 else "")
        self.details = QLabel(f"first {when(info.first_seen)} · last {when(info.last_seen)}\n{sources}")
        self.details.setToolTip("\n".join(info.sources))
        self.suggest_button = None
        actions = QHBoxLayout()
        if info.suggestion is not None:
            name, sim = info.suggestion
            self.suggest_button = QPushButton(f"Is this {name}? Yes")
            self.suggest_button.setToolTip(f"The group's centre is {sim:.2f} from {name}, just below the match "
                                           f"threshold: enrol its best crops as {name}")
            self.suggest_button.clicked.connect(lambda _=False: panel.accept_suggestion(info.id))
            actions.addWidget(self.suggest_button)
        self.name_button = QPushButton("Name…")
        self.name_button.setToolTip("Enrol this group's best crops as a new or existing person")
        self.name_button.clicked.connect(lambda _=False: panel.name_group(info.id))
        self.ignore_button = QPushButton("Ignore")
        self.ignore_button.setToolTip("Never show this face again (kept as an anchor so it does not come back)")
        self.ignore_button.clicked.connect(lambda _=False: panel.ignore_group(info.id))
        actions.addStretch(1)
        actions.addWidget(self.name_button)
        actions.addWidget(self.ignore_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(head)
        lay.addLayout(row)
        lay.addWidget(self.details)
        lay.addLayout(actions)

    def set_crops(self, images: dict) -> None:
        for sid, lab in self.crops.items():
            if sid in images:
                lab.setPixmap(thumb(images[sid]))
                self.crops_set += 1
