#!/bin/sh
echo adm
