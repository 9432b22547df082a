"""igcap: Instagram captions from four fine-tuned ViT-GPT2 models."""
