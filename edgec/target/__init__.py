"""Targets and what runs on them: target files, toolchains, the emulator, the firmware
harness, ELF sizes.  Depends only on edgec.ir."""
