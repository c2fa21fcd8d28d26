"""Workout history: people, their sets and reps, kept in a database as they happen."""
