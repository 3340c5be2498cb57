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


def layer_breakdown(images: dict[str, str], bases=("python:3.11", "python:3.11-slim")):
    """Stacked bars, one per image: its base image, then each layer it added, in build order,
    labelled with the instruction that made it (layers under 1 MB are lumped together)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 1.1 * len(images) + 1.4))
    colours = iter(plt.get_cmap("tab10").colors)
    widest = max(dockerlab.image_size(ref) for ref in images.values()) / 1e6
    for row, (label, ref) in enumerate(images.items()):
        base = dockerlab.base_image(ref, bases)
        added = dockerlab.layers(ref)[len(dockerlab.layers(base)) if base else 0:]
        small = sum(layer.size for layer in added if layer.size < 1e6)
        segments = ([(dockerlab.image_size(base), base, "#b0b0b0")] if base else [])
        segments += [(layer.size, layer.instruction, next(colours)) for layer in added if layer.size >= 1e6]
        segments += [(small, "small layers", "#e0e0e0")] if small else []
        left = 0.0
        for size, text, colour in segments:
            width = size / 1e6
            ax.barh(row, width, left=left, color=colour, edgecolor="white")
            room = int(width / widest * 180)  # characters that fit in the segment at this size
            if room >= 6:
                ax.text(left + widest / 200, row, f"{text[:room]}\n{width:.0f} MB", va="center", fontsize=7)
            left += width
    ax.set_yticks(range(len(images)), list(images))
    ax.invert_yaxis()
    ax.set_xlabel("MB: the base image, then each layer the Dockerfile added")
    ax.set_title("Where the bytes are")
    fig.tight_layout()
    return fig


def layer_table(ref: str) -> None:
    """Print the image's layers, oldest first: size and the instruction that made each."""
    for layer in dockerlab.layers(ref):
        print(f"{dockerlab.human(layer.size):>9}  {layer.instruction[:90]}")
