# SimCLR on CIFAR-10 (ImageFolder JPEG archives), the recipe of
# ../shared/reference/torch_simclr.py: resnet18 width 16, CIFAR stem, head
# 128 -> 512 -> 128, batch 256, temperature 0.5, SGD momentum 0.9,
# lr 0.06 x B/256 cosine, weight decay 5e-4, `cifar` augmentations.
#   make -f pipelines/cifar10.mk [EPOCHS=7] [DATA=../shared/data] [RUN=name] [PRECISION=bf16]
# The SimCLR paper's LARS settings: OPTIM=lars LR=0.3 WD=1e-6 WARMUP=1
# (at batch 256 and 7 epochs they trail SGD by 4.5 points: README.md).
DATASET     := CIFAR-10
DATA        ?= ../shared/data
TRAIN_INPUT ?= $(DATA)/cifar10-train.tar.gz
TEST_INPUT  ?= $(DATA)/cifar10-test.tar.gz
INPUT_SIZE  := 32x32x3
RECIPE      ?= cifar
WIDTH       ?= 16
EPOCHS      ?= 7
include pipelines/simclr.mk
