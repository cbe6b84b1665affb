import os
import sys


def total(values):
    result = 0
    for value in values:
        result += value
    return result


def load(path):
    try:
        return open(path).read()
    except:
        return None
