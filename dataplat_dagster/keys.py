"""The asset keys of a project's stored assets, by name: plain lists, so that the commands
that only read the project's state name them without importing Dagster."""

DATASETS = "datasets"
EMBEDDINGS = "embeddings"
IMAGE_FOLDERS = "image_folders"


def dataset_key(project: str, name: str) -> list[str]:
    return [project, DATASETS, name]


def embeddings_key(project: str, name: str) -> list[str]:
    return [project, EMBEDDINGS, name]


def image_folder_key(project: str, name: str) -> list[str]:
    return [project, IMAGE_FOLDERS, name]
