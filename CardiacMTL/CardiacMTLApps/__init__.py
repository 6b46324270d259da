"""The front ends that need both libraries: command lines, workflows, batch and the web app."""
