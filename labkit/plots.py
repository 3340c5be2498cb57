"""Pictures of images: total sizes side by side, and where each image's bytes are."""

from __future__ import annotations

from . import dockerlab


def image_sizes(images: dict[str, str], title: str = "Image size"):
    """A bar chart of the sizes of ``{label: image ref}``, in MB, with each bar labelled."""
    import matplotlib.pyplot as plt

    labels = list(images)
    sizes = [dockerlab.image_size(ref) / 1e6 for ref in images.values()]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    bars = ax.barh(labels, sizes, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{s:.0f} MB" for s in sizes], padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("MB")
    ax.set_xlim(0, max(sizes) * 1.2)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def layer_breakdown(images: dict[str, str], top: int = 6):
    """Stacked bars: each image's biggest layers, labelled with the instruction that made them."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.9 * len(images) + 1.6))
    for row, (label, ref) in enumerate(images.items()):
        layers = sorted(dockerlab.layers(ref), key=lambda layer: layer.size, reverse=True)
        shown, rest = layers[:top], sum(layer.size for layer in layers[top:])
        left = 0.0
        for layer in shown + ([dockerlab.Layer(rest, "(smaller layers)")] if rest else []):
            width = layer.size / 1e6
            ax.barh(row, width, left=left, edgecolor="white")
            if width > 25:
                ax.text(left + width / 2, row, layer.instruction[:22], ha="center", va="center",
                        fontsize=7, rotation=0)
            left += width
    ax.set_yticks(range(len(images)), list(images))
    ax.invert_yaxis()
    ax.set_xlabel("MB (each segment is one layer, biggest first)")
    ax.set_title("Where the bytes are")
    fig.tight_layout()
    return fig


def layer_table(ref: str) -> None:
    """Print the image's layers, oldest first: size and the instruction that made each."""
    for layer in dockerlab.layers(ref):
        print(f"{dockerlab.human(layer.size):>9}  {layer.instruction[:90]}")
